// The route table: one page module per line (router.js sorts literal
// segments before parameters, so the order here does not matter).
import home from './pages/home.js';
import login from './pages/login.js';
import register from './pages/register.js';
import artist from './pages/artist.js';
import album from './pages/album.js';
import track from './pages/track.js';
import post from './pages/post.js';
import { newPost, editPost } from './pages/post-edit.js';
import search from './pages/search.js';
import chat, { chatSession } from './pages/chat.js';
import feedback, { feedbackTicket } from './pages/feedback.js';
import moderate from './pages/moderate.js';
import moderateArtists, { moderateArtist, moderateAlbum } from './pages/moderate-catalog.js';
import moderateTickets, { moderateTicket } from './pages/moderate-tickets.js';
import profile from './pages/profile.js';

export default [
  home,
  login,
  register,
  artist,
  album,
  track,
  post,
  newPost,
  editPost,
  search,
  chat,
  chatSession,
  feedback,
  feedbackTicket,
  moderate,
  moderateArtists,
  moderateArtist,
  moderateAlbum,
  moderateTickets,
  moderateTicket,
  profile,
];
